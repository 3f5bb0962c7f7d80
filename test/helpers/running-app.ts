import type { Worker } from '@temporalio/worker';
import {
  createTestApp,
  createTestWorker,
  type TestApp,
  type TestServiceOverrides,
  type TestServices,
} from './services';

/** Deletes the schedules the services created on the run's shared dev server (they outlive the file otherwise). */
export const deleteTestSchedules = async (services: TestServices | undefined): Promise<void> => {
  for (const s of services?.schedules ?? [])
    await services!.temporal.schedule
      .getHandle(s.scheduleId)
      .delete()
      .catch(() => {});
};

/**
 * The app over test services with a real worker running on its task queue (in `beforeAll`; `stop` in `afterAll`
 * shuts the worker down and closes the app; `deleteSchedules`: first deletes the schedules it created).
 */
export const startTestApp = async (
  o: TestServiceOverrides & { deleteSchedules?: boolean } = {},
): Promise<{ api: TestApp; stop: () => Promise<void> }> => {
  const { deleteSchedules, ...overrides } = o;
  const api = await createTestApp(overrides);
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const stop = async () => {
    if (deleteSchedules) await deleteTestSchedules(api);
    worker?.shutdown();
    await running;
    await api.close();
  };
  try {
    worker = await createTestWorker(api);
    running = worker.run();
  } catch (err) {
    await stop();
    throw err;
  }
  return { api, stop };
};
