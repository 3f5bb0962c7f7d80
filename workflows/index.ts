export { selfCheck } from './self-check';
export { subjectImport } from './subject-import';
export { consent } from './consent';
export { campaign } from './campaign';
