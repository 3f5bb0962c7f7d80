// A worker thread does not inherit the parent's TypeScript loader: register tsx, then load the thread.
import { register } from 'tsx/esm/api';

register();
await import('./subject-prepare-thread.ts');
