/**
 * stt-pocketsphinx: offline streaming speech recognition with CMU PocketSphinx (Debian's
 * libpocketsphinx3 0.8+5prealpha and the pocketsphinx-en-us model), bound with koffi.
 *
 * - lm mode: open dictation with the N-gram model;
 * - grammar mode (default when the agent gives phrases): a JSGF grammar of the phrases, their
 *   words and spoken digits, re-decoded with the N-gram model when it finds nothing or only
 *   with low confidence;
 * - keywords mode: keyword spotting of the phrases.
 *
 * Takes the call's 8 kHz audio (sampleRate 8000, default) and brings it to the 16 kHz model
 * itself, or 16 kHz audio for wideband calls. See README.md in this folder for the config keys,
 * measured accuracy and cost.
 */
import { defineSttPlugin } from '../../src/plugins/api.js';
import { PocketSphinxConfigSchema, type PocketSphinxConfig } from './config.js';
import { PLUGIN_NAME } from './native.js';
import { PocketSphinxProvider } from './provider.js';

export default defineSttPlugin<PocketSphinxConfig>({
  manifest: {
    name: PLUGIN_NAME,
    kind: 'stt',
    version: '1.0.0',
    apiVersion: '^1.0.0',
    description: 'Offline speech recognition with CMU PocketSphinx (N-gram, phrase grammar or keyword spotting)',
    configSchema: PocketSphinxConfigSchema,
  },
  create: (config, ctx) => PocketSphinxProvider.create(config, ctx),
});
