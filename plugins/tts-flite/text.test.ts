import { describe, expect, it } from 'vitest';
import { foldToAscii, splitIntoChunks, splitSentences } from './text.js';

describe('foldToAscii', () => {
  it('maps typography to the ASCII flite reads and strips accents', () => {
    const { ascii, foreign } = foldToAscii('It’s a “café” — naïve… 2×3 ½ Straße');
    expect(ascii).toBe('It\'s a "cafe", naive... 2 times 3 1/2 Strasse');
    expect(foreign).toEqual([]);
  });

  it('drops emoji and format characters, keeps newlines as sentence breaks', () => {
    const { ascii } = foldToAscii('Hello 😀 world\u200B!\n\n  Next\tline  ');
    expect(ascii).toBe('Hello world!\nNext line');
  });

  it('attaches punctuation to its word (a detached comma loses its pause in flite)', () => {
    expect(foldToAscii('— Well — yes , sure ; fine .').ascii).toBe('Well, yes, sure; fine.');
  });

  it('reports letters of scripts flite cannot speak', () => {
    expect(foldToAscii('Привіт, John').foreign).toEqual(['П', 'р', 'и', 'в', 'і', 'т']);
    expect(foldToAscii('東京 station').foreign.length).toBe(2);
    expect(foldToAscii('Zürich, Kraków, São Paulo').foreign).toEqual([]);
  });

  it('is empty for whitespace and symbols only', () => {
    expect(foldToAscii(' \n\t \u00A0 ').ascii).toBe('');
    expect(foldToAscii('🙂🙂').ascii).toBe('');
  });
});

describe('splitSentences', () => {
  it('cuts at sentence ends, not at abbreviations, initials, decimals or times', () => {
    expect(splitSentences('Dr. Smith sees you at 10:30 a.m. on Jan. 5. It costs 3.5 dollars! Ready? J. R. Doe agrees.')).toEqual([
      'Dr. Smith sees you at 10:30 a.m. on Jan. 5.',
      'It costs 3.5 dollars!',
      'Ready?',
      'J. R. Doe agrees.',
    ]);
  });

  it('"No." abbreviates "number" only before a number', () => {
    expect(splitSentences('Is it open? No. It is closed.')).toEqual(['Is it open?', 'No.', 'It is closed.']);
    expect(splitSentences('See No. 5 and No. #6 please.')).toEqual(['See No. 5 and No. #6 please.']);
  });

  it('keeps closing quotes and brackets with their sentence; newlines cut', () => {
    expect(splitSentences('He said "stop." Then (quietly.) left\nNew line')).toEqual(['He said "stop."', 'Then (quietly.)', 'left', 'New line']);
  });

  it('treats an ellipsis as an end', () => {
    expect(splitSentences('Well... I think so.')).toEqual(['Well...', 'I think so.']);
  });
});

describe('splitIntoChunks', () => {
  it('cuts long sentences at clauses, then at spaces, never over the limit', () => {
    const clause = 'this clause has exactly some words in it';
    const long = `${Array.from({ length: 12 }, () => clause).join(', ')}.`;
    const chunks = splitIntoChunks(long, 100);
    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(100);
    expect(chunks.join(' ').replace(/\s+/g, ' ')).toBe(long);
    // Cut at commas: every chunk but the last ends with one.
    for (const c of chunks.slice(0, -1)) expect(c.endsWith(',')).toBe(true);

    const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const byWords = splitIntoChunks(words, 50);
    for (const c of byWords) expect(c.length).toBeLessThanOrEqual(50);
    expect(byWords.join(' ')).toBe(words);
  });

  it('cuts a single over-long token hard', () => {
    const token = 'x'.repeat(250);
    expect(splitIntoChunks(`go ${token} now`, 100)).toEqual(['go', 'x'.repeat(100), 'x'.repeat(100), `${'x'.repeat(50)} now`]);
  });

  it('drops pieces with nothing to say', () => {
    expect(splitIntoChunks('... !!! ?')).toEqual([]);
    expect(splitIntoChunks('')).toEqual([]);
    expect(splitIntoChunks('Hi. ... Bye.')).toEqual(['Hi.', 'Bye.']);
  });
});
