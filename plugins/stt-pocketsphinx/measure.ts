/**
 * Measures the plugin on this machine: accuracy (word error rate, LM vs phrase grammar, on the
 * call-centre phrase set spoken by five offline voices, wideband and through a G.711 telephone
 * channel), CPU per second of audio, flush latency, memory and start-up time per decoder.
 *
 *   npx tsx plugins/stt-pocketsphinx/measure.ts [--scenario wideband,telephone,telephone-filter]
 *       [--config '{"grammar":{"garbageWeight":0.05}}'] [--skip-accuracy] [--skip-cost] [--verbose]
 *
 * Scenarios: wideband = 16 kHz synthetic speech, plugin at sampleRate 16000; telephone = the
 * same through 8 kHz G.711, plugin at sampleRate 8000 (default "image" upsampling);
 * telephone-filter = the same with upsampling "filter" (what the engine's resampler gives).
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
    scenario: { type: 'string', default: 'wideband,telephone,telephone-filter' },
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

interface Scenario {
  name: string;
  channel: Channel;
  config: Record<string, unknown>;
}

const SCENARIOS: Record<string, Scenario> = {
  wideband: { name: 'wideband 16 kHz', channel: 'wideband', config: { sampleRate: 16000 } },
  telephone: { name: 'telephone (G.711, 8 kHz in, image upsampling)', channel: 'telephone', config: { sampleRate: 8000, upsampling: 'image' } },
  'telephone-filter': { name: 'telephone (G.711, 8 kHz in, filter upsampling)', channel: 'telephone', config: { sampleRate: 8000, upsampling: 'filter' } },
};

async function accuracy(sc: Scenario): Promise<void> {
  const p = await provider(sc.config);
  const rate = p.sampleRate;
  const channel = sc.channel;
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
        const clip = await utterance(text, voice, channel, rate);
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
    rows.push(`| ${voice.name} | ${v.lmIn.summary} | ${v.gIn.summary} | ${v.lmOut.summary} | ${v.gOut.summary} |`);
    await lm.close();
    await g.close();
  }
  console.log(`\n### Accuracy, ${sc.name} (WER; in-grammar: ${IN_GRAMMAR.length} utterances/voice, out-of-grammar: ${OUT_OF_GRAMMAR.length})\n`);
  console.log('| voice | LM, in-grammar | grammar, in-grammar | LM, out-of-grammar | grammar+fallback, out-of-grammar |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`| flite (4 voices) | ${flite.lmIn.summary} | ${flite.gIn.summary} | ${flite.lmOut.summary} | ${flite.gOut.summary} |`);
  console.log(`| all 5 voices | ${total.lmIn.summary} | ${total.gIn.summary} | ${total.lmOut.summary} | ${total.gOut.summary} |`);
  console.log(`\nLM re-decodes: ${oogFallbacks}/${outTurns} out-of-grammar turns, ${falseFallbacks}/${inTurns} in-grammar turns (${pct(falseFallbacks / inTurns)})`);
  await p.close();
}

async function cost(): Promise<void> {
  const p = await provider({ pool: { maxIdle: 0, prewarm: 0 } });
  const voice = VOICES[0];
  if (!voice) return;
  const rate = p.sampleRate;
  const clips = await Promise.all(IN_GRAMMAR.map((t) => utterance(t, voice, 'telephone', rate)));
  const audioSeconds = clips.reduce((s, c) => s + c.samples.length / rate, 0);
  const frame = rate / 50;
  console.log(`\n### Cost (this machine, ${rate} Hz input)\n`);
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
      const t = performance.now();
      await say(s, clip);
      flushMs.push(performance.now() - t);
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    const cpuMsPerSec = (cpu.user + cpu.system) / 1000 / audioSeconds;
    // Silence: what an idle caller costs (the engine pushes all audio, speech or not).
    const silence = { samples: new Int16Array(rate * 10), sampleRate: rate };
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
      const frames = Math.ceil(clip.samples.length / frame);
      for (let i = 0; i < frames; i++) {
        s.push({ samples: clip.samples.subarray(i * frame, (i + 1) * frame), sampleRate: rate });
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

  await p.close();
}

/**
 * Memory and start-up per decoder. Runs first, in a process that has not freed a decoder yet
 * (malloc would hand freed memory to the next one and hide its size), holding every decoder.
 */
async function memory(): Promise<void> {
  const p = await provider({ pool: { maxIdle: 16, prewarm: 1 } });
  console.log('\n### Memory and start-up\n');
  for (const [label, phrases] of [
    ['LM', undefined],
    ['grammar', AGENT_PHRASES],
  ] as const) {
    // Not measured: the first LM stream takes the decoder built at start-up, the first grammar
    // stream compiles the grammar (reads the dictionary into the JS heap once).
    await p.stream({ language: 'en-US', phrases, signal: ac.signal });
    (global as { gc?: () => void }).gc?.();
    const n = 4;
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await p.stream({ language: 'en-US', phrases, signal: ac.signal });
    const ms = (performance.now() - t0) / n;
    const rss = (process.memoryUsage().rss - rss0) / n / 1e6;
    console.log(`${label} decoder: ${rss.toFixed(1)} MB RSS each, ${ms.toFixed(0)} ms to build (${n} held at once)`);
  }
  await p.close();
}

try {
  if (!values['skip-cost']) await memory();
  const scenarios = values.scenario.split(',').map((n) => {
    const sc = SCENARIOS[n];
    if (!sc) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    return sc;
  });
  if (!values['skip-accuracy']) for (const sc of scenarios) await accuracy(sc);
  if (!values['skip-cost']) await cost();
} finally {
  ac.abort();
  await rm(cacheDir, { recursive: true, force: true });
}
