/**
 * The task events a shim publishes, as (topic, type URL, encoded message). The transport (containerd's ttrpc
 * Events/Forward, with retries and ordering) is the shim framework's business; the Task service only emits.
 *
 * @module
 */
import { encodeMessage, events, TASK_EVENT_TOPICS, toTimestamp } from "../proto/mod.ts";

/** One event ready to be sent. */
export interface TaskEvent {
  namespace: string;
  topic: string;
  typeUrl: string;
  payload: Uint8Array;
}

/** Where the Task service sends events; the implementation keeps them in order. */
export interface EventSink {
  publish(event: TaskEvent): void;
}

type EventTypeUrl = keyof typeof TASK_EVENT_TOPICS;

function make(namespace: string, typeUrl: EventTypeUrl, payload: Uint8Array): TaskEvent {
  return { namespace, topic: TASK_EVENT_TOPICS[typeUrl], typeUrl, payload };
}

/** Builders for each event, taking plain values. */
export const taskEvents = {
  create(ns: string, e: {
    containerId: string;
    bundle: string;
    rootfs: { type: string; source: string; target?: string; options: string[] }[];
    io: { stdin: string; stdout: string; stderr: string; terminal: boolean };
    checkpoint: string;
    pid: number;
  }): TaskEvent {
    return make(ns, "containerd.events.TaskCreate", encodeMessage(events.TaskCreate, e));
  },
  start(ns: string, containerId: string, pid: number): TaskEvent {
    return make(ns, "containerd.events.TaskStart", encodeMessage(events.TaskStart, { containerId, pid }));
  },
  exit(ns: string, e: { containerId: string; id: string; pid: number; exitStatus: number; exitedAt: Date }): TaskEvent {
    return make(
      ns,
      "containerd.events.TaskExit",
      encodeMessage(events.TaskExit, { ...e, exitedAt: toTimestamp(e.exitedAt) }),
    );
  },
  delete(
    ns: string,
    e: { containerId: string; id: string; pid: number; exitStatus: number; exitedAt?: Date },
  ): TaskEvent {
    return make(
      ns,
      "containerd.events.TaskDelete",
      encodeMessage(events.TaskDelete, { ...e, exitedAt: e.exitedAt ? toTimestamp(e.exitedAt) : undefined }),
    );
  },
  oom(ns: string, containerId: string): TaskEvent {
    return make(ns, "containerd.events.TaskOOM", encodeMessage(events.TaskOOM, { containerId }));
  },
  execAdded(ns: string, containerId: string, execId: string): TaskEvent {
    return make(ns, "containerd.events.TaskExecAdded", encodeMessage(events.TaskExecAdded, { containerId, execId }));
  },
  execStarted(ns: string, containerId: string, execId: string, pid: number): TaskEvent {
    return make(
      ns,
      "containerd.events.TaskExecStarted",
      encodeMessage(events.TaskExecStarted, { containerId, execId, pid }),
    );
  },
  paused(ns: string, containerId: string): TaskEvent {
    return make(ns, "containerd.events.TaskPaused", encodeMessage(events.TaskPaused, { containerId }));
  },
  resumed(ns: string, containerId: string): TaskEvent {
    return make(ns, "containerd.events.TaskResumed", encodeMessage(events.TaskResumed, { containerId }));
  },
  checkpointed(ns: string, containerId: string, checkpoint: string): TaskEvent {
    return make(
      ns,
      "containerd.events.TaskCheckpointed",
      encodeMessage(events.TaskCheckpointed, { containerId, checkpoint }),
    );
  },
};
