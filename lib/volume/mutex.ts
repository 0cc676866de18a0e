/**
 * A FIFO mutex for the engine's mutating operations (writes, synch points, rolling a
 * segment). When nothing holds it, a task starts at once, in the caller's turn, without a
 * microtask hop: the kernel sends one write at a time, so that is the write path's usual case.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = false;

  /** A task holds the mutex (or waits for it). */
  get busy(): boolean {
    return this.held;
  }

  run<T>(task: () => Promise<T> | T): Promise<T> {
    let result: Promise<T>;
    if (this.held) {
      result = this.tail.then(task);
    } else {
      this.held = true;
      try {
        result = Promise.resolve(task());
      } catch (err) {
        result = Promise.reject(err);
      }
    }
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.tail = settled;
    void settled.then(() => {
      if (this.tail === settled) this.held = false;
    });
    return result;
  }
}
