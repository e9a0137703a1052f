import { describe, expect, it } from 'vitest';
import { findVariant, languageCandidates, parseVoiceList, resolveVoiceSpec, voiceForLanguage, voiceInventory, type VoiceInventory } from './voices.js';

// Lines exactly as espeak-ng 1.51 prints them (a subset).
const LIST = `Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)
 5  de              --/M      German             gmw/de
 5  en-029          --/M      English_(Caribbean) gmw/en-029           (en 10)
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 5  en-gb-x-rp      --/M      English_(Received_Pronunciation) gmw/en-GB-x-rp       (en-gb 4)(en 5)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es
 5  es-419          --/M      Spanish_(Latin_America) roa/es-419           (es-mx 6)(es 6)
 5  nb              --/M      Norwegian_Bokmål  gmq/nb               (no 5)
 5  pt              --/M      Portuguese_(Portugal) roa/pt               (pt-pt 5)
 5  pt-br           --/M      Portuguese_(Brazil) roa/pt-BR            (pt 6)
 5  ru              --/M      Russian            zle/ru
 5  sr              --/M      Serbian            zls/sr
 5  uk              --/M      Ukrainian          zle/uk
 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)
 5  yue             --/M      Chinese_(Cantonese,_latin_as_Jyutping) sit/yue-Latn-jyutping (zh-yue 5)(zh 8)
`;

const inv: VoiceInventory = {
  voices: parseVoiceList(LIST),
  variants: [
    { name: 'female3', file: 'f3' },
    { name: 'Alicia', file: 'Alicia' },
  ],
};

describe('parseVoiceList', () => {
  it('reads every column, including names with commas and other languages', () => {
    expect(inv.voices).toHaveLength(16);
    expect(inv.voices[0]).toEqual({
      priority: 5,
      language: 'cmn',
      gender: '--/M',
      name: 'Chinese_(Mandarin,_latin_as_English)',
      file: 'sit/cmn',
      others: [
        { language: 'zh-cmn', priority: 5 },
        { language: 'zh', priority: 5 },
      ],
    });
    expect(inv.voices.find((v) => v.file === 'gmw/en-US')).toMatchObject({ priority: 2, language: 'en-us', others: [{ language: 'en', priority: 3 }] });
    expect(inv.voices.find((v) => v.file === 'gmq/nb')?.name).toBe('Norwegian_Bokmål');
  });
});

describe('language -> voice', () => {
  it('tries the tag, then shorter tags, with the region alone and Latin American Spanish', () => {
    expect(languageCandidates('en-US')).toEqual(['en-us', 'en']);
    expect(languageCandidates('sr_Latn_RS')).toEqual(['sr-latn-rs', 'sr-latn', 'sr-rs', 'sr']);
    expect(languageCandidates('es-AR')).toEqual(['es-ar', 'es-419', 'es']);
  });

  it.each([
    ['en-US', 'gmw/en-US'],
    ['en-us', 'gmw/en-US'],
    ['en-GB', 'gmw/en'],
    ['en-AU', 'gmw/en'], // no en-au: "en", where en-gb has the best priority (2)
    ['en', 'gmw/en'],
    ['uk-UA', 'zle/uk'],
    ['uk', 'zle/uk'],
    ['ru-RU', 'zle/ru'],
    ['zh-CN', 'sit/cmn'], // zh: cmn 5 beats yue 8
    ['zh-yue', 'sit/yue'],
    ['no', 'gmq/nb'],
    ['nb-NO', 'gmq/nb'],
    ['pt-BR', 'roa/pt-BR'],
    ['pt-PT', 'roa/pt'],
    ['pt', 'roa/pt'],
    ['es-ES', 'roa/es'],
    ['es-MX', 'roa/es-419'],
    ['es-CO', 'roa/es-419'],
    ['sr-Latn-RS', 'zls/sr'],
    ['de-AT', 'gmw/de'],
  ])('%s -> %s', (tag, file) => {
    expect(voiceForLanguage(inv.voices, tag)?.file).toBe(file);
  });

  it('has no voice for a language espeak-ng does not speak', () => {
    expect(voiceForLanguage(inv.voices, 'tlh-001')).toBeUndefined();
    expect(voiceForLanguage(inv.voices, '')).toBeUndefined();
  });
});

describe('resolveVoiceSpec', () => {
  it('accepts a language code, a file or a display name, any case, with an optional variant', () => {
    expect(resolveVoiceSpec(inv, 'uk')).toMatchObject({ spec: 'zle/uk' });
    expect(resolveVoiceSpec(inv, 'GMW/EN-us')).toMatchObject({ spec: 'gmw/en-US' });
    expect(resolveVoiceSpec(inv, 'english_(america)')).toMatchObject({ spec: 'gmw/en-US' });
    expect(resolveVoiceSpec(inv, 'en-us+f3')).toMatchObject({ spec: 'gmw/en-US+f3', variant: 'f3' });
    expect(resolveVoiceSpec(inv, 'en-us+Female3')).toMatchObject({ spec: 'gmw/en-US+f3' });
    expect(resolveVoiceSpec(inv, 'ru', 'alicia')).toMatchObject({ spec: 'zle/ru+Alicia' });
    // A variant in the spec beats the default one.
    expect(resolveVoiceSpec(inv, 'ru+f3', 'Alicia')).toMatchObject({ spec: 'zle/ru+f3' });
  });

  it('explains what is wrong', () => {
    expect(resolveVoiceSpec(inv, 'klingon')).toMatch(/no voice "klingon"/);
    expect(resolveVoiceSpec(inv, 'en-us+nobody')).toMatch(/no voice variant "nobody".*f3/);
    expect(resolveVoiceSpec(inv, 'en+f3+m1')).toMatch(/not a voice/);
    expect(resolveVoiceSpec(inv, '+f3')).toMatch(/not a voice/);
    expect(findVariant(inv, 'F3')).toBe('f3');
  });
});

describe('voiceInventory (the real espeak-ng)', () => {
  it('lists languages and variants, and maps the ones Switchboard needs', () => {
    const listing = voiceInventory();
    if (!listing.ok) throw new Error(listing.problem);
    const { voices, variants } = listing.inventory;
    expect(voices.length).toBeGreaterThan(50);
    expect(variants.some((v) => v.file === 'f3')).toBe(true);
    expect(voiceForLanguage(voices, 'uk-UA')?.language).toBe('uk');
    expect(voiceForLanguage(voices, 'ru-RU')?.language).toBe('ru');
    expect(voiceForLanguage(voices, 'en-US')?.language).toBe('en-us');
  });

  it('reports a missing binary with the package to install', () => {
    const listing = voiceInventory('/nonexistent/espeak-ng');
    expect(listing.ok).toBe(false);
    if (!listing.ok) {
      expect(listing.problem).toMatch(/not found/);
      expect(listing.hint).toMatch(/apt-get install espeak-ng/);
    }
  });
});
