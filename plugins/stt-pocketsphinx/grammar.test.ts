/**
 * The pure parts of stt-pocketsphinx: phrase normalisation, grammar and keyphrase building,
 * dictionary parsing and caching, config validation, rate conversion. No native code.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_MODEL_ROOT, extraArgv, PocketSphinxConfigSchema, resolvePaths } from './config.js';
import { normalizeHyp } from './decoder.js';
import { baseWord, parseDictLine, PronunciationDictionary, writeCompactDictionary, writeTrimmedDictionary } from './dictionary.js';
import {
  buildJsgf,
  buildKeyphraseList,
  compilePhrases,
  DIGIT_WORDS,
  garbageDictionary,
  garbageWord,
  isGarbageWord,
  phraseWords,
} from './grammar.js';
import { modelSampleRate, rateConverter, repeatSamples } from './rate.js';
import { garbageShare } from './stream.js';
import { wordErrors } from './testkit.js';

describe('phraseWords', () => {
  it('lower-cases, keeps inner apostrophes, drops punctuation', () => {
    expect(phraseWords("I'd like to CHECK my order's status, please!")).toEqual(["i'd", 'like', 'to', 'check', 'my', "order's", 'status', 'please']);
  });
  it('speaks digits one by one and splits on hyphens and slashes', () => {
    expect(phraseWords('Call 24/7 re-schedule')).toEqual(['call', 'two', 'four', 'seven', 're', 'schedule']);
  });
  it('normalises typographic apostrophes and strips quotes at word edges', () => {
    expect(phraseWords('don\u2019t \u2018stop\u2019 \'quoted\'')).toEqual(["don't", 'stop', 'quoted']);
  });
  it('returns nothing for punctuation only', () => {
    expect(phraseWords(' ... !? ')).toEqual([]);
  });
});

describe('compilePhrases and buildJsgf', () => {
  const dict = new Set(['check', 'my', 'order', 'status', 'talk', 'to', 'an', 'operator', 'yes', ...DIGIT_WORDS]);
  const known = (w: string): boolean => dict.has(w);
  const soundsLikeDigit = (w: string): boolean => w === 'to';

  it('keeps whole phrases, offers their words loose, adds digits, drops unknown words', () => {
    const c = compilePhrases(['Check my order status', 'talk to an operator', 'talk to zorblax', 'yes'], { digits: true }, known, soundsLikeDigit);
    expect(c.phrases).toEqual([
      ['check', 'my', 'order', 'status'],
      ['talk', 'to', 'an', 'operator'],
    ]);
    expect(c.unknownWords).toEqual(['zorblax']);
    expect(c.looseWords).toEqual(['an', 'check', 'my', 'operator', 'order', 'status', 'talk', 'yes']); // "to" sounds like "two"
    expect(c.digitWords).toEqual(DIGIT_WORDS);
    expect(c.words).toContain('to');
    expect(c.words).not.toContain('zorblax');
  });

  it('offers digit sound-alikes loose when digits are off', () => {
    const c = compilePhrases(['talk to an operator'], { digits: false }, known, soundsLikeDigit);
    expect(c.looseWords).toContain('to');
    expect(c.digitWords).toEqual([]);
  });

  it('builds a JSGF grammar with weighted loose words and garbage, unweighted phrases and digits', () => {
    const c = compilePhrases(['check my order status', 'yes'], { digits: true }, known);
    const jsgf = buildJsgf(c, { looseWordWeight: 0.01, garbageWeight: 0.1 }, ['__g_aa', '__g_b']) as string;
    expect(jsgf.startsWith('#JSGF V1.0;\ngrammar switchboard;\npublic <utterance> = <item>+;\n')).toBe(true);
    const items = (/<item> = (.*);/.exec(jsgf)?.[1] ?? '').split(' | ');
    expect(items).toContain('check my order status');
    expect(items).toContain('/0.01/ yes');
    expect(items).toContain('four');
    expect(items).toContain('/0.1/ __g_aa');
    expect(jsgf).not.toMatch(/e-\d/); // the JSGF lexer takes no exponents
  });

  it('omits the garbage loop at weight 0 and gives nothing for nothing', () => {
    const c = compilePhrases(['yes'], { digits: false }, known);
    expect(buildJsgf(c, { looseWordWeight: 0.000001, garbageWeight: 0 }, ['__g_aa'])).toBe('#JSGF V1.0;\ngrammar switchboard;\npublic <utterance> = <item>+;\n<item> = /0.000001/ yes;\n');
    expect(buildJsgf(compilePhrases(['zorblax'], { digits: false }, known), { looseWordWeight: 0.01, garbageWeight: 0.1 })).toBeUndefined();
  });

  it('builds keyphrases with thresholds scaled by length, without lone digits', () => {
    const c = compilePhrases(['check my order status', 'yes'], { digits: true }, known);
    const list = buildKeyphraseList(c, 1e-20, (w) => (w === 'yes' ? 3 : 4)) as string;
    expect(list.split('\n').filter(Boolean)).toEqual(['check my order status /1.00e-32/', 'yes /1.00e-6/']);
  });
});

describe('garbage words and hypotheses', () => {
  it('names one pseudo-word per phone and recognises them', () => {
    expect(garbageDictionary(['AA', 'B', 'AA', 'SIL+', ''])).toEqual(['__g_aa AA', '__g_b B']);
    expect(isGarbageWord(garbageWord('AH'))).toBe(true);
    expect(isGarbageWord('aha')).toBe(false);
  });
  it('strips fillers, garbage and alternate-pronunciation marks from hypotheses', () => {
    expect(normalizeHyp('<s> __g_p check(2) <sil> my [NOISE]  order __g_t </s>')).toBe('check my order');
  });
  it('measures the garbage share with an allowance at the edges', () => {
    expect(garbageShare({ leadingGarbage: 20, innerGarbage: 0, trailingGarbage: 25, words: 100 })).toBe(0);
    expect(garbageShare({ leadingGarbage: 50, innerGarbage: 30, trailingGarbage: 0, words: 100 })).toBeCloseTo(50 / 150);
    expect(garbageShare({ leadingGarbage: 0, innerGarbage: 0, trailingGarbage: 0, words: 0 })).toBe(0);
  });
});

describe('dictionary files', () => {
  let dir: string;
  let dictPath: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sb-ps-dict-'));
    dictPath = join(dir, 'test.dict');
    await writeFile(dictPath, ['read R IY D', 'read(2) R EH D', '', 'status S T AE T AH S # comment', 'zebra Z IY B R AH'].join('\n'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses lines and base words', () => {
    expect(parseDictLine('read(2) R EH D')).toEqual({ headword: 'read(2)', phones: 'R EH D' });
    expect(parseDictLine('x Y # c')).toEqual({ headword: 'x', phones: 'Y' });
    expect(parseDictLine('   ')).toBeUndefined();
    expect(baseWord('read(2)')).toBe('read');
    expect(baseWord('(paren)')).toBe('(paren)');
  });

  it('looks words up with all their alternates and caches misses', async () => {
    const d = new PronunciationDictionary(dictPath);
    const found = await d.lookup(['read', 'status', 'nope']);
    expect(found.get('read')).toEqual(['read R IY D', 'read(2) R EH D']);
    expect(found.get('status')).toEqual(['status S T AE T AH S']);
    expect(found.get('nope')).toEqual([]);
    expect(await d.phones()).toEqual(['AE', 'AH', 'B', 'D', 'EH', 'IY', 'R', 'S', 'T', 'Z']);
  });

  it('writes compact and trimmed dictionaries once, content-addressed', async () => {
    const a = await writeCompactDictionary(dir, ['b X', 'a Y', 'b X']);
    expect(await readFile(a, 'utf8')).toBe('a Y\nb X\n');
    expect(await writeCompactDictionary(dir, ['a Y', 'b X'])).toBe(a);
    let calls = 0;
    const vocab = async (): Promise<ReadonlySet<string>> => {
      calls++;
      return new Set(['read', 'zebra']);
    };
    const t = await writeTrimmedDictionary(dir, dictPath, 'k1', vocab);
    expect(await readFile(t, 'utf8')).toBe('read R IY D\nread(2) R EH D\nzebra Z IY B R AH\n');
    expect(await writeTrimmedDictionary(dir, dictPath, 'k1', vocab)).toBe(t);
    expect(calls).toBe(1);
  });
});

describe('config', () => {
  it('defaults to Debian paths, 8 kHz input, image upsampling, grammar defaults', () => {
    const c = PocketSphinxConfigSchema.parse({});
    expect(c.modelDir).toBe(`${DEBIAN_MODEL_ROOT}/en-us`);
    expect(c.languageModel).toBe(`${DEBIAN_MODEL_ROOT}/en-us.lm.bin`);
    expect(c.sampleRate).toBe(8000);
    expect(c.upsampling).toBe('image');
    expect(c.mode).toBeUndefined();
    expect(c.grammar).toEqual({ digits: true, looseWordWeight: 0.01, garbageWeight: 0.1, wordInsertionPenalty: 0.01, fallbackToLm: true, outOfGrammarThreshold: 0.2 });
    expect(c.pool).toEqual({ maxIdle: 2, idleTimeoutMs: 300_000, prewarm: 1 });
  });

  it('refuses unknown keys, unknown and reserved decoder arguments, bad values', () => {
    const r = PocketSphinxConfigSchema.safeParse({ modle: 'x', extraArgs: { beem: 1, '-lm': 'x', maxhmmpf: 3000 }, sampleRate: 44100, mode: 'dictation' });
    expect(r.success).toBe(false);
    const messages = r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n') ?? '';
    expect(messages).toMatch(/modle/);
    expect(messages).toMatch(/extraArgs\.beem: "beem" is not a pocketsphinx argument/);
    expect(messages).toMatch(/extraArgs\.-lm: "-lm" is set by the plugin/);
    expect(messages).not.toMatch(/maxhmmpf/);
    expect(messages).toMatch(/sampleRate/);
    expect(messages).toMatch(/mode/);
  });

  it('turns extra arguments into an argv and resolves relative paths', () => {
    expect(extraArgv({ maxhmmpf: 3000, '-bestpath': false, remove_noise: true })).toEqual(['-maxhmmpf', '3000', '-bestpath', 'no', '-remove_noise', 'yes']);
    const c = resolvePaths(PocketSphinxConfigSchema.parse({ modelDir: 'models/hmm', dictionary: '/abs.dict' }), '/etc/switchboard');
    expect(c.modelDir).toBe('/etc/switchboard/models/hmm');
    expect(c.dictionary).toBe('/abs.dict');
  });
});

describe('rate conversion', () => {
  it('repeats samples for image upsampling and passes equal rates through', () => {
    expect([...repeatSamples(Int16Array.from([1, -2, 3]))]).toEqual([1, 1, -2, -2, 3, 3]);
    const same = Int16Array.from([5]);
    expect(rateConverter(16000, 16000, 'image')(same)).toBe(same);
    expect(rateConverter(8000, 16000, 'image')(Int16Array.from([7]))).toEqual(Int16Array.from([7, 7]));
  });
  it('uses the band-limited resampler for "filter" and for downsampling', () => {
    const up = rateConverter(8000, 16000, 'filter');
    const out = up(new Int16Array(160).fill(1000));
    expect(out.length).toBeGreaterThan(250); // ~320 minus the filter's look-ahead
    expect(out.length).toBeLessThanOrEqual(320);
    const down = rateConverter(16000, 8000, 'image');
    expect(down(new Int16Array(320)).length).toBeLessThanOrEqual(160);
  });
  it('reads the model rate from feat.params', () => {
    expect(modelSampleRate('-lowerf 130\n-upperf 6800\n')).toBe(16000);
    expect(modelSampleRate('-upperf 3500\n')).toBe(8000);
    expect(modelSampleRate('-samprate 8000\n-upperf 6800')).toBe(8000);
    expect(modelSampleRate('')).toBe(16000);
  });
});

describe('word error rate helper', () => {
  it('counts substitutions, insertions and deletions', () => {
    expect(wordErrors('four two seven one', 'four to seven one')).toEqual({ errors: 1, words: 4 });
    expect(wordErrors('check my order', 'check order status now')).toEqual({ errors: 3, words: 3 });
    expect(wordErrors('yes', '')).toEqual({ errors: 1, words: 1 });
  });
});
