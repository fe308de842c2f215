// pocketlm/server: the OpenAI-compatible HTTP server and the continuous-batching scheduler under it (Node).
export { serve, type ServeOptions, type RunningServer } from './http.js';
export { Scheduler, Job, QueueFullError, type SchedulerOptions, type SchedulerStats } from './scheduler.js';
export { ModelRegistry, type Served } from './models.js';
