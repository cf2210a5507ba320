/**
 * Publishes task events to containerd through its ttrpc `Events/Forward` endpoint (`$TTRPC_ADDRESS`), in order,
 * over a unix connection made through libc, with the namespace in the envelope and in the `containerd-namespace-ttrpc` metadata as the Go publisher sends it.
 *
 * containerd restarts must not lose events: a failed Forward is retried (reconnecting each time) with a growing
 * delay for up to {@link RETRY_WINDOW_MS}; later events wait behind it so order is kept. Only an event that keeps
 * failing past that window is dropped, and said so in the log.
 *
 * @module
 */
import { log } from "../log.ts";
import { encodeMessage, EVENTS_SERVICE, eventsService, nowTimestamp } from "../proto/mod.ts";
import { Client } from "../ttrpc/client.ts";
import { UnixConn } from "../sys/unix_stream.ts";
import type { EventSink, TaskEvent } from "../task/events.ts";
import { after } from "../timer.ts";

/** Per-Forward deadline, as containerd's publisher uses. */
export const FORWARD_TIMEOUT_MS = 5000;
/** How long one event is retried before it is given up. */
export const RETRY_WINDOW_MS = 120_000;
/** Queue bound; past it the oldest events are dropped rather than growing without limit. */
export const MAX_QUEUED = 4096;

export class Publisher implements EventSink {
  #queue: { event: TaskEvent; at: ReturnType<typeof nowTimestamp> }[] = [];
  #client: Client | undefined;
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];
  #wake: (() => void) | undefined;

  constructor(readonly ttrpcAddress: string) {}

  publish(event: TaskEvent): void {
    if (this.#closed) return;
    if (this.#queue.length >= MAX_QUEUED) {
      const dropped = this.#queue.shift();
      log.error("event queue full; dropping the oldest event", { topic: dropped?.event.topic });
    }
    // The timestamp is taken when the event happens, not when it is finally delivered.
    this.#queue.push({ event, at: nowTimestamp() });
    if (!this.#running) this.#run();
  }

  /**
   * Resolves once every queued event was delivered or dropped (or after `timeoutMs`). The timeout is unref'd
   * (src/timer.ts): a caller with nothing else pending keeps the process alive itself (serve_run.ts's exit does).
   */
  flush(timeoutMs = 5000): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = after(timeoutMs, resolve);
      this.#idle.push(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  close(): void {
    this.#closed = true;
    this.#client?.close();
    this.#client = undefined;
    this.#wake?.();
  }

  async #connection(): Promise<Client> {
    if (this.#client && !this.#client.isClosed) return this.#client;
    // Through libc, not Deno.connect: the shim runs without net permission.
    const client = new Client(await UnixConn.connect(this.ttrpcAddress), {
      onClose: () => {
        if (this.#client === client) this.#client = undefined;
      },
    });
    this.#client = client;
    return this.#client;
  }

  async #send(item: { event: TaskEvent; at: ReturnType<typeof nowTimestamp> }): Promise<void> {
    const { event, at } = item;
    const payload = encodeMessage(eventsService.ForwardRequest, {
      envelope: {
        timestamp: at,
        namespace: event.namespace,
        topic: event.topic,
        event: { type_url: event.typeUrl, value: event.payload },
      },
    });
    const client = await this.#connection();
    await client.call(EVENTS_SERVICE, "Forward", payload, {
      timeoutMs: FORWARD_TIMEOUT_MS,
      metadata: { "containerd-namespace-ttrpc": event.namespace },
    });
  }

  /** The pause between retries; unref'd and not a Deno timer (src/timer.ts). close() ends it early. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = after(ms, () => {
        this.#wake = undefined;
        resolve();
      });
      this.#wake = () => {
        timer.cancel();
        resolve();
      };
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const item = this.#queue[0];
        const first = Date.now();
        for (let attempt = 1;; attempt++) {
          try {
            await this.#send(item);
            break;
          } catch (err) {
            this.#client?.close();
            this.#client = undefined;
            if (this.#closed) return;
            if (Date.now() - first > RETRY_WINDOW_MS) {
              log.error("dropping event after retries", { topic: item.event.topic, attempts: attempt, error: err });
              break;
            }
            if (attempt === 1) log.warn("publishing event failed; retrying", { topic: item.event.topic, error: err });
            await this.#sleep(Math.min(100 * 2 ** (attempt - 1), 2000));
          }
        }
        this.#queue.shift();
      }
    } finally {
      this.#running = false;
      for (const f of this.#idle.splice(0)) f();
    }
  }
}
