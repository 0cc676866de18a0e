/**
 * A FIFO mutex for the engine's mutating operations (writes, synch points, rolling a
 * segment). Uncontended, `run` costs one microtask, so the write path can take it every time.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
