import { createServer } from 'node:net';

const listenOn = (port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });

/** A port the OS just handed out on loopback. */
export const freePort = (): Promise<number> => listenOn(0);

export const isPortFree = (port: number): Promise<boolean> =>
  listenOn(port).then(
    () => true,
    () => false,
  );
