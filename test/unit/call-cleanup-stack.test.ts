/**
 * CleanupStack: releases in reverse order of acquisition, one at a time (an async release
 * finishes before the next starts), every step runs even when earlier ones throw or reject,
 * failures are reported by name and never thrown, and a resource acquired after teardown
 * ran is released at once.
 */
import { describe, expect, it } from 'vitest';
import { CleanupStack } from '../../src/call/cleanup-stack.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function recorder(): { errors: { what: string; err: unknown }[]; stack: CleanupStack } {
  const errors: { what: string; err: unknown }[] = [];
  return { errors, stack: new CleanupStack((what, err) => errors.push({ what, err })) };
}

describe('CleanupStack', () => {
  it('releases in reverse order of push, and tracks its size', async () => {
    const { stack, errors } = recorder();
    const order: string[] = [];
    for (const name of ['rtp', 'media channel', 'bridge', 'session']) stack.push(name, () => void order.push(name));
    expect(stack.size).toBe(4);
    await stack.run();
    expect(order).toEqual(['session', 'bridge', 'media channel', 'rtp']);
    expect(stack.size).toBe(0);
    expect(errors).toEqual([]);
  });

  it('waits for each async release before starting the next', async () => {
    const { stack } = recorder();
    const log: string[] = [];
    const slow = (name: string, ms: number) => async (): Promise<void> => {
      log.push(`${name}:start`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`${name}:end`);
    };
    stack.push('a', slow('a', 5));
    stack.push('b', slow('b', 30));
    stack.push('c', slow('c', 1));
    await stack.run();
    expect(log).toEqual(['c:start', 'c:end', 'b:start', 'b:end', 'a:start', 'a:end']);
  });

  it('runs every step although some throw or reject, and reports each failure by name', async () => {
    const { stack, errors } = recorder();
    const ran: string[] = [];
    const boom = new Error('bridge gone');
    stack.push('first', () => void ran.push('first'));
    stack.push('sync throw', () => {
      ran.push('sync throw');
      throw boom;
    });
    stack.push('middle', async () => {
      ran.push('middle');
    });
    stack.push('async reject', async () => {
      ran.push('async reject');
      await tick();
      throw new Error('channel not found');
    });
    stack.push('throws a string', () => {
      ran.push('throws a string');
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a careless release may throw anything
      throw 'not an Error';
    });
    stack.push('last', () => void ran.push('last'));
    await expect(stack.run()).resolves.toBeUndefined();
    expect(ran).toEqual(['last', 'throws a string', 'async reject', 'middle', 'sync throw', 'first']);
    expect(errors.map((e) => e.what)).toEqual(['throws a string', 'async reject', 'sync throw']);
    expect(errors[0]?.err).toBe('not an Error');
    expect((errors[1]?.err as Error).message).toBe('channel not found');
    expect(errors[2]?.err).toBe(boom);
  });

  it('releases a resource pushed after run() at once, and reports its failure', async () => {
    const { stack, errors } = recorder();
    await stack.run();
    let released = 0;
    stack.push('late endpoint', () => void released++);
    // Released synchronously within push, not parked on the stack.
    expect(released).toBe(1);
    expect(stack.size).toBe(0);

    stack.push('late bridge', async () => {
      await tick();
      throw new Error('too late');
    });
    expect(stack.size).toBe(0);
    await tick();
    await tick();
    expect(errors.map((e) => e.what)).toEqual(['late bridge']);
    // A second run has nothing left to release.
    await stack.run();
    expect(released).toBe(1);
  });

  it('a step pushed while teardown is running (a setup step finishing late) is released too', async () => {
    const { stack, errors } = recorder();
    const order: string[] = [];
    let lateDone: Promise<void> | undefined;
    stack.push('a', () => void order.push('a'));
    stack.push('b', async () => {
      order.push('b');
      // Setup acquires something while teardown is in progress.
      lateDone = new Promise<void>((resolve) =>
        stack.push('late', () => {
          order.push('late');
          resolve();
        }),
      );
      await tick();
    });
    await stack.run();
    await lateDone;
    expect(order).toContain('late');
    expect(order.filter((x) => x !== 'late')).toEqual(['b', 'a']);
    expect(order.indexOf('late')).toBeGreaterThan(order.indexOf('b'));
    expect(errors).toEqual([]);
    expect(stack.size).toBe(0);
  });

  it('run() with nothing pushed resolves', async () => {
    const { stack, errors } = recorder();
    await stack.run();
    expect(errors).toEqual([]);
  });
});
