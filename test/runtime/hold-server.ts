/**
 * Test helper run as a child process: starts an embedded PostgreSQL or a Temporal dev server, prints
 * one JSON line, then waits to be killed — as `custodian start` does when it is killed with -9.
 */
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { freePort } from '../../runtime/ports';
import { startDevServer } from '../../runtime/temporal-server';

const [kind, path, cliPath] = process.argv.slice(2);
if (kind === 'postgres') {
  const db = await startEmbeddedPostgres(path!, await freePort(), 'postgres');
  console.log(JSON.stringify({ ownerUrl: db.ownerUrl }));
} else {
  const server = await startDevServer({ cliPath: cliPath!, dbFile: path! });
  console.log(JSON.stringify({ address: server.address }));
}
setInterval(() => {}, 60_000);
