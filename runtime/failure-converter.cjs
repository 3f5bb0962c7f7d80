// Loaded by path (DataConverter.failureConverterPath): require()d by clients and workers, and bundled into the
// workflow sandbox, so it is plain CommonJS with no Node built-ins.
/* global require, exports */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DefaultFailureConverter } = require('@temporalio/common');

// Message and stack trace move into encodedAttributes, a payload, which the payload codec encrypts.
exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
