/**
 * The layers of lib/ import downward only (ARCHITECTURE.md): util and errors → format → archive →
 * volume → history → retention → fuse → agent → metrics → cli. Each module's imports, static and dynamic, are read from
 * its source; an import of a layer above is a failure, and so is a module outside the layers.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/system.js';

/** Layers from the bottom; a module may import its own layer and those before it. */
const LAYERS = [['util', 'errors.ts', 'types'], ['format'], ['archive'], ['volume'], ['history'], ['retention'], ['fuse'], ['agent'], ['metrics'], ['cli']];

const LIB = path.join(ROOT, 'lib');

function layerOf(file: string): number {
  const top = path.relative(LIB, file).split(path.sep)[0]!;
  return LAYERS.findIndex((names) => names.includes(top));
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

t.test('layers: every module of lib/ imports its own layer or those below', async (t) => {
  const upward: string[] = [];
  const outside: string[] = [];
  for (const file of sources(LIB)) {
    const layer = layerOf(file);
    if (layer === -1) outside.push(path.relative(LIB, file));
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      if (layerOf(target) > layer) upward.push(`${path.relative(LIB, file)} imports ${path.relative(LIB, target)}`);
    }
  }
  t.same(outside, [], 'every module lies in a layer');
  t.same(upward, [], 'no import reaches a layer above');
});

t.test('layers: the commands, the mount and the agent use the volume’s methods, not its parts', async (t) => {
  const peeking = ['fuse', 'agent', 'cli'].flatMap((top) => sources(path.join(LIB, top))).filter((file) => /\.internals\b/.test(fs.readFileSync(file, 'utf8')));
  t.same(peeking.map((file) => path.relative(LIB, file)), [], 'none reads volume.internals');
});
