/**
 * Resources acquired during call setup, released in reverse order. Every release runs even
 * if an earlier one fails; failures go to `onError`, never thrown, so teardown always finishes.
 */
export class CleanupStack {
  private readonly steps: { what: string; release: () => Promise<void> | void }[] = [];
  private ran = false;

  constructor(private readonly onError: (what: string, err: unknown) => void) {}

  push(what: string, release: () => Promise<void> | void): void {
    if (this.ran) {
      // Acquired after teardown already ran (a slow setup step finished late): release now.
      void this.release({ what, release });
      return;
    }
    this.steps.push({ what, release });
  }

  get size(): number {
    return this.steps.length;
  }

  async run(): Promise<void> {
    this.ran = true;
    while (this.steps.length > 0) await this.release(this.steps.pop()!);
  }

  private async release(step: { what: string; release: () => Promise<void> | void }): Promise<void> {
    try {
      await step.release();
    } catch (err) {
      this.onError(step.what, err);
    }
  }
}
