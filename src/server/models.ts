// Which models a server serves: one (--model), or every model file and folder in a directory
// (--models-dir), each loaded on first use and at most `maxModels` resident (the least recently used
// idle one makes room). A request names a model by its id from /v1/models, never by a path: ids are
// looked up in the directory's listing, and whatever an id leads to must resolve inside the directory.

import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import type { Model } from '../engine.js';
import { HttpError } from './openai.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

export interface Served {
  id: string;
  model: Model;
  scheduler: Scheduler;
}

interface Entry {
  id: string;
  path: string;
  loading?: Promise<Served>;
  served?: Served;
  /** Why the last load failed (a request tries again). */
  failed?: string;
  lastUsed: number;
}

export interface RegistryOptions {
  /** One model (a path or a manifest name). */
  model?: string;
  /** A directory of models (GGUF files and Hugging Face folders). */
  modelsDir?: string;
  /** Resident at most this many from modelsDir. Default 1. */
  maxModels?: number;
  load: (path: string) => Promise<Model>;
  scheduler: SchedulerOptions;
}

/** The id a file or folder is served under: its name without .gguf (or a llama2.c .bin). */
export function modelId(path: string): string {
  return basename(path).replace(/\.(gguf|bin)$/i, '');
}

export class ModelRegistry {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;
  private readonly dir?: string;

  constructor(private readonly o: RegistryOptions) {
    if (!o.model === !o.modelsDir) throw new HttpError(500, 'serve one model (model) or a directory of them (modelsDir), not both or neither', 'server_error');
    if (o.modelsDir) {
      if (!existsSync(o.modelsDir) || !statSync(o.modelsDir).isDirectory()) throw new HttpError(500, `${o.modelsDir}: no such directory`, 'server_error');
      this.dir = realpathSync(o.modelsDir);
    } else this.entries.set(modelId(o.model!), { id: modelId(o.model!), path: o.model!, lastUsed: 0 });
  }

  /** The ids that can be asked for (a directory is read again each time: models added later appear). */
  list(): string[] {
    if (!this.dir) return [...this.entries.keys()];
    const ids: string[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      const p = join(this.dir, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if ((st.isFile() && /\.gguf$/i.test(name)) || (st.isDirectory() && existsSync(join(p, 'config.json')))) {
        ids.push(modelId(name));
        if (!this.entries.has(modelId(name))) this.entries.set(modelId(name), { id: modelId(name), path: p, lastUsed: 0 });
      }
    }
    return ids;
  }

  /** True once the single model is loaded (a directory's models load on first use: always ready). */
  get ready(): boolean {
    return !!this.dir || [...this.entries.values()][0]!.served !== undefined;
  }

  /** Why the single model could not be loaded, if it could not. */
  get failure(): string | undefined {
    return this.dir ? undefined : [...this.entries.values()][0]!.failed;
  }

  /** Models in memory now. */
  resident(): Served[] {
    return [...this.entries.values()].flatMap((e) => (e.served ? [e.served] : []));
  }

  /** The model a request names (any name when one model is served), loaded if need be. */
  async get(id: string | undefined): Promise<Served> {
    let e: Entry | undefined;
    if (!this.dir) e = [...this.entries.values()][0];
    else {
      if (id === undefined) throw new HttpError(400, 'model: name one of the models in GET /v1/models', 'invalid_request_error', 'model');
      if (!this.list().includes(id)) throw new HttpError(404, `model "${id}" does not exist: GET /v1/models lists the models served`, 'invalid_request_error', 'model', 'model_not_found');
      e = this.entries.get(id);
    }
    const entry = e!;
    entry.lastUsed = ++this.clock;
    if (entry.served) return entry.served;
    entry.loading ??= this.load(entry).finally(() => (entry.loading = undefined));
    return entry.loading;
  }

  private async load(e: Entry): Promise<Served> {
    if (this.dir) {
      // Symlinks out of the directory are refused: the path an id leads to must stay inside it.
      const real = realpathSync(e.path);
      if (!real.startsWith(this.dir + sep)) throw new HttpError(404, `model "${e.id}" does not exist`, 'invalid_request_error', 'model', 'model_not_found');
      this.makeRoom(e);
    }
    let model: Model;
    try {
      model = await this.o.load(e.path);
    } catch (err) {
      e.failed = (err as Error).message;
      throw new HttpError(500, `model "${e.id}" could not be loaded: ${e.failed}`, 'server_error', 'model', 'model_load_failed');
    }
    e.failed = undefined;
    e.served = { id: e.id, model, scheduler: new Scheduler(model, this.o.scheduler) };
    return e.served;
  }

  /** Evict the least recently used idle model while too many are resident. */
  private makeRoom(keep: Entry): void {
    const max = this.o.maxModels ?? 1;
    for (;;) {
      const loaded = [...this.entries.values()].filter((x) => x.served && x !== keep);
      if (loaded.length < max) return;
      const idle = loaded.filter((x) => x.served!.scheduler.stats.active === 0 && x.served!.scheduler.stats.queued === 0).sort((a, b) => a.lastUsed - b.lastUsed);
      if (idle.length === 0) throw new HttpError(503, `all ${max} resident models are busy: try again shortly`, 'server_error', null, 'overloaded');
      const victim = idle[0]!;
      victim.served!.scheduler.dispose();
      victim.served!.model.dispose();
      victim.served = undefined;
    }
  }

  dispose(): void {
    for (const e of this.entries.values()) {
      e.served?.scheduler.dispose();
      e.served?.model.dispose();
      e.served = undefined;
    }
  }
}
