#!/usr/bin/env node
import { main } from '../lib/cli/main.js';

// A reader that stops early (`salvo list | head -1`) closes the pipe: that ends the output, not in an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

process.exit(await main(process.argv.slice(2)));
