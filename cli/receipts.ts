import { readFile } from 'node:fs/promises';
import { verifyReceipt } from '../activities/consent-receipts';
import { ConfigError } from '../runtime/config';

const USAGE = 'usage: verify-receipt <receipt.json> [--public-key <file.pem>]';

const parseArgs = (args: string[]) => {
  let file: string | undefined;
  let publicKey: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--public-key') {
      publicKey = args[++i];
      if (publicKey === undefined) throw new ConfigError(`--public-key needs a file; ${USAGE}`);
    } else if (arg.startsWith('--') || file !== undefined) {
      throw new ConfigError(USAGE);
    } else {
      file = arg;
    }
  }
  if (file === undefined) throw new ConfigError(USAGE);
  return { file, publicKey };
};

const read = async (file: string, what: string) => {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
};

/**
 * `verify-receipt <file> [--public-key <pem>]`: checks a signed consent receipt offline (no database, no
 * keyring, no network). With `--public-key`, that key must be the one that signed; without it only the
 * receipt's integrity under the key it carries is checked, and stderr says so. Exit 1 when invalid.
 */
export const verifyReceiptCommand = async (args: string[]) => {
  const { file, publicKey } = parseArgs(args);
  const text = await read(file, 'receipt');
  let signed: unknown;
  try {
    signed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${file} is not JSON`);
  }
  const result = verifyReceipt(signed, publicKey === undefined ? undefined : await read(publicKey, 'public key'));
  console.log(JSON.stringify(result, null, 2));
  if (result.valid && result.checkedWith === 'embedded') {
    console.error(
      '[custodian] intact under the key the receipt carries; pass --public-key <the handler’s key> to check who signed it',
    );
  }
  return result.valid ? 0 : 1;
};
