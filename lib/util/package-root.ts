/** The folder salvo is installed in: the first one up from this module with a package.json (lib/util, or dist/lib/util once compiled). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let root = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(root, 'package.json'))) {
    const up = path.dirname(root);
    if (up === root) throw new Error(`salvo’s package root not found above ${fileURLToPath(import.meta.url)}`);
    root = up;
  }
  return root;
}
